"""The whole Shillings stack under one supervisord (``scripts/stack.py``, ``make run/start/...``).

- ``config``: ``StackConfig`` (every setting, from the environment), paths, ``StackError``;
- ``render``: supervisord's programs, nginx.conf, Prometheus files, written into var/etc/;
- ``processes``: finding and stopping this stack's processes; recovery after an unclean stop;
- ``supervisor``: its supervisord (pid, XML-RPC, supervisorctl) and the running stack's shape;
- ``health``: /healthz through nginx and per web process, waiting for it, ``status``;
- ``lifecycle``: render, run, start, stop, restart, nginx alone;
- ``scale``: new process counts while the stack serves;
- ``supervisor_rpc``: the supervisord RPC extension ``scale`` uses (``shillings.updateGroup``);
- ``cli``: the command line.
"""
