"""The audit trail: a per-thread hash chain of events, written with the writes they describe.

- ``log``: ``rt.audit`` (gathering, the saver's write participant, reading, verifying,
  exporting, streaming); ``chain``: the pure hash chain; ``handler``: the LangChain callback
  handler that turns a run's transitions into events (and OpenTelemetry spans);
  ``schema``: its table.
"""
