"""The programme's progress (督查通报): each declared milestone's measure per department, from the inventory and
the store, with the departments that lag flagged by the rule in progress/policy.yaml."""
