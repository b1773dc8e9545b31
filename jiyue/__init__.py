"""Pieces every jiyue domain shares: the command-line conventions (and, as they arrive, the SSH
sessions, the fleet runner, the result store and the report writers). Each lives here once."""
