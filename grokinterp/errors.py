"""Errors a user can act on. The CLI prints each as one line and exits with status 2."""


class GrokinterpError(Exception):
    """Base class: the message names the problem and the fix."""


class RunNotFoundError(GrokinterpError):
    pass


class NotARunError(GrokinterpError):
    pass


class CheckpointError(GrokinterpError):
    pass


class RunExistsError(GrokinterpError):
    pass
