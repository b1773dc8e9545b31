"""Pieces every jiyue domain shares, each living here once: the command-line conventions (`cli`), the
fleet runner and its observers (`runner`), SSH sessions to hosts with the one known_hosts reader
(`ssh`), CLI sessions to network devices (`device`) and the platforms' CLI data with the configuration
parse (`platforms`), the result store (`store`), the atomic file writer (`files`), the report writers
(`reports`, `i18n`) and running Ansible (`ansible`)."""
