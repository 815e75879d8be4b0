"""Background work: the RQ jobs that implement the tasks of `couponsvc.tasks`, the worker, the periodic ticker."""
