"""A supervisord RPC extension (namespace ``shillings``) for scaling a program group while it
serves.

``supervisorctl update`` replaces a changed group whole: it stops every process of the group
before it starts the new ones, so changing ``numprocs`` of ``web`` would stop all web
processes at once. ``shillings.updateGroup(name)`` re-reads the configuration and applies
that group's new definition in place instead:

- processes that were added are created and started (autostart), as ``update`` would;
- processes that were removed are dropped; they must be stopped first (stop them once nothing
  sends them work any more);
- the others keep running and get their new definition for their next start (restart them
  one at a time to apply it, e.g. a new ``SHILLINGS_APP_SERVERS``).

supervisord.conf loads it with ``[rpcinterface:shillings]`` (it lives in this package so that
supervisord from the project's venv can import it however it is started).
"""

from __future__ import annotations

from typing import Any

from supervisor.states import STOPPED_STATES, SupervisorStates
from supervisor.xmlrpc import Faults, RPCError


class ShillingsNamespace:
    """The ``shillings.*`` methods of supervisord's XML-RPC interface."""

    def __init__(self, supervisord: Any) -> None:
        self.supervisord = supervisord

    def updateGroup(self, name: str) -> dict[str, list[str]]:
        """Re-read the configuration and apply group ``name``'s new definition in place.

        @param string name   the program group (e.g. web)
        @return struct       {added: [process names], removed: [process names]}
        """
        options = self.supervisord.options
        if isinstance(options.mood, int) and options.mood < SupervisorStates.RUNNING:
            raise RPCError(Faults.SHUTDOWN_STATE)
        try:
            options.process_config(do_usage=False)
        except ValueError as e:
            raise RPCError(Faults.CANT_REREAD, str(e)) from None
        new = next((g for g in options.process_group_configs if g.name == name), None)
        group = self.supervisord.process_groups.get(name)
        if new is None or group is None:
            raise RPCError(Faults.BAD_NAME, name)
        wanted = {pconfig.name: pconfig for pconfig in new.process_configs}
        removed = sorted(n for n in group.processes if n not in wanted)
        running = [n for n in removed if group.processes[n].get_state() not in STOPPED_STATES]
        if running:
            raise RPCError(Faults.STILL_RUNNING, ", ".join(running))
        for process_name in removed:
            del group.processes[process_name]
        new.after_setuid()  # as supervisord does for a group it adds
        added = []
        for process_name, pconfig in wanted.items():
            if process_name in group.processes:
                group.processes[process_name].config = pconfig  # used from its next start
            else:
                group.processes[process_name] = pconfig.make_process(group)
                added.append(process_name)
        group.config = new  # `update` now sees this group as unchanged
        return {"added": sorted(added), "removed": removed}


def make_rpcinterface(supervisord: Any, **config: Any) -> ShillingsNamespace:
    """The factory supervisord.conf names (``supervisor.rpcinterface_factory``)."""
    return ShillingsNamespace(supervisord)
