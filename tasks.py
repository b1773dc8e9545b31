"""jiyue's command line: `invoke --list` shows every task, `invoke --help TASK` its options.

Each domain keeps its tasks beside its code (inventory/tasks.py, lab/tasks.py, …); this file
assembles them and holds `demo`, the main job on the sample city.
"""

from invoke import Collection, task

from audit import tasks as audit_tasks
from audit.baseline import tasks as baseline_tasks
from inventory import tasks as inventory_tasks
from jiyue.cli import HELP, PROBLEMS, fail, load_inventory, out_dir
from jiyue.store import Store
from lab import demo as demo_module
from lab import tasks as lab_tasks
from lab.hosts import LabError
from lines import tasks as lines_tasks
from migrations import tasks as migrate_tasks
from network import tasks as network_tasks
from progress import tasks as progress_tasks


@task(help={"inventory": HELP["inventory"], "out": HELP["out"],
            "store": "history store URL (default: $JIYUE_STORE or sqlite:///state/history.sqlite)"})
def demo(c, inventory=None, out=None, store=None):
    """The main job on the sample city: the lab up and seeded, then every stage (audit, migration, network,
    graded protection) through the domains' services."""
    inv = load_inventory(inventory)
    try:
        result = demo_module.run(inv, out_dir(out), Store(store))
    except LabError as exc:
        raise fail(str(exc)) from None
    if result.unreachable:
        raise fail(f"unreachable: {', '.join(result.unreachable)}. Check them with: invoke lab.status", code=PROBLEMS)
    if result.problems:
        raise fail("; ".join(result.problems), code=PROBLEMS)


ns = Collection(demo)
ns.add_collection(Collection.from_module(inventory_tasks, name="inventory"))
ns.add_collection(Collection.from_module(lab_tasks, name="lab"))
ns.add_collection(Collection.from_module(audit_tasks, name="audit"))
ns.add_collection(Collection.from_module(migrate_tasks, name="migrate"))
ns.add_collection(Collection.from_module(baseline_tasks, name="baseline"))
ns.add_collection(Collection.from_module(network_tasks, name="network"))
ns.add_collection(Collection.from_module(progress_tasks, name="report"))
ns.add_collection(Collection.from_module(lines_tasks, name="lines"))
