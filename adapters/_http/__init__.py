"""The HTTP layer: the one bounded request every HTTP path sends (``request``) and the
ionq-core interop of the IonQ adapter (``ionq_core``). Private."""
