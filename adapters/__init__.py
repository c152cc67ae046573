"""IO adapters for jobwait: everything that touches a clock, a sleep or a socket lives here.

Import the runtime you use: ``from jobwait.adapters import sync`` (or ``asyncio``,
``trio``, ``httpx``, ``ionq``, ``server``). The pure core, :mod:`jobwait`, never
imports this package.
"""
