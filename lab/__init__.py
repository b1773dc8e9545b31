"""The lab: the inventory's city as real SSH hosts and simulated devices on this one machine, to rehearse on.

Operators rehearse audits, migrations, pushes and baselines on it; the demo and the test suite run on it.
Every address, subnet and name comes from the inventory, IPv4 or IPv6.

The parts:

- `model.py`: the typed records the operations return (`HostStatus`, `DeviceStatus`, `SeedResult`, `Proc`).
- `hosts.py`: the engine, `Lab`: `up`, `status`, `device_status`, `stop_host`, `exec`, `down`; each host a
  network namespace with its own sshd and per-host paths (`/etc/os-release` from `os_release.yaml`).
- `seed.py`: `seed` gives the hosts the history `scenario.yaml` tells (logs, logins, packages, data) and
  starts their services (`service.py`: the in-host control script; `app.py`, `appdb.py`, `pidfile.py`:
  the stand-in application), the gateway's nginx (`gateway.py`) and the live traffic (`traffic.py`).
- `baseline_seed.py`: `seed_baseline` writes each host's graded-protection state from `baseline.yaml`;
  composes with `seed` in either order.
- `history.py`: `seed_history`, the earlier collection runs a new lab has not lived through (marked seeded).
- `prometheus.py`: the opt-in monitoring: node_exporter in each host's namespace, past history backfilled from
  `scenario.yaml` with promtool (marked seeded), a Prometheus scraping them (`lab.monitoring`); `zabbix.py`: a
  real Zabbix on loopback (`lab.monitoring --zabbix`) with trends backfilled from the same profiles;
  `postgres.py`: throwaway PostgreSQL clusters (the Zabbix's, the store tests').
- `checker.py`: the client that proves a migration lost no acknowledged write; `remote.py`: SSH for tests.
- `netsim/`: the simulated network devices (one process, one listener per device).
- `procs.py`, `keys.py`: what the modules share: running the machine's tools, process liveness, SSH keys.
- `tasks.py`: the `lab.*` tasks (parse options, call the above, print, choose the exit code).
- `demo.py`: the main job (`invoke demo`); `isolate.py`: the test suite's own namespaces.

The lab writes no reports, so it has no `report.py`.
"""
