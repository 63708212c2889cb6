"""Features: each domain installs itself into the running app in one place.

A feature module has one ``install(app, core, ...)`` that builds the feature's service from the
shared ``Core`` (config, store, live model, AMI/ARI clients, metrics, supervisor) and registers
everything the feature brings, nowhere else:

- its HTTP routes, and the narrow ``web.AppKey`` values its handlers read (``api/keys.py``);
- its long-running loops: ``core.supervise(name, factory)`` (restarted on failure, shown in
  ``/healthz`` while down, counted in ``callctl_task_failures_total{task}``);
- its AMI listeners (``core.sync.add_listener``), resync hooks (``core.sync.add_resync_hook``)
  and Stasis entries (``core.on_stasis(first_arg, handler)``);
- its scrape-time gauges (``core.metrics.provide(...)``).

``install`` returns the service, so a feature that needs another's (the router needs the
recorder) gets it as an argument: the order of installation in ``app.py`` is the dependency
order, and there is no global registry.
"""
