"""The job server's own machinery: the notifier that POSTs its webhooks (``notifier``).
Part of the test double :mod:`jobwait.adapters.server`, which alone imports
:mod:`jobwait.testing`. Private."""
