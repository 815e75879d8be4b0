"""Background work: RQ jobs, the queue names, and (issue #3) the outbox relay."""
