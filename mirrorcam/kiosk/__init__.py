"""Museum kiosk mode: an unattended exhibit that recovers from anything and stores nothing.

The parts, each testable on its own:

* :mod:`~mirrorcam.kiosk.config`: the TOML configuration and its checker
  (``mirrorcam kiosk --check-config FILE``), every problem with its line and key.
* :mod:`~mirrorcam.kiosk.state`: the visitor-facing state machine (attract -> engage
  -> imitate -> mirror) and visitor selection, pure and driven by an injected clock.
* :mod:`~mirrorcam.kiosk.playlist`: performer clips, loaded once, broken ones skipped.
* :mod:`~mirrorcam.kiosk.render`: the kiosk's screens (large type, no state of their own).
* :mod:`~mirrorcam.kiosk.service`: systemd watchdog notification, the aggregate
  counters file and the size-capped log.
* :mod:`~mirrorcam.kiosk.app`: the loop that wires camera, pose, neurons, state
  machine, screen and window together.
"""
