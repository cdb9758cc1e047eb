"""The error a case fails with when its study cannot run as written."""


class AblationError(RuntimeError):
    pass
