"""Waits inside Apache Airflow 3: a deferrable trigger and operator for any job API
jobwait can read.

Theory of operation
===================

``JobWaitOperator`` describes the wait as data (the durable core's
:class:`~jobwait._durable.SourceSpec`, the job ids, the fleet's options, a wall-clock
deadline) and defers to ``JobWaitTrigger``, whose arguments are exactly that data: JSON,
with credentials named by Airflow connection id and never present. The triggerer runs
the trigger's ``run()``, which reads the connections there, builds the HTTP source and
drives one :class:`~jobwait.JobFleet` through the core's driver step and the shared
async fleet loop, then fires one event holding every job's outcome record. The task
resumes in a worker (``execute_complete``), returns the records as XCom, or fails naming
the jobs that did not succeed.

The triggerer saves nothing while the trigger runs: after a restart Airflow re-creates
the trigger from the same arguments, and the trigger continues the same wait
(:func:`jobwait._durable.resume_fleet`): the deadline is an instant, each job is read
once at once, and the schedule goes on from where it had reached.

Install with ``pip install 'jobwait[airflow]'`` (Apache Airflow 3).
"""

from jobwait._durable import Credential as Credential
from jobwait._durable import SourceSpec as SourceSpec
from jobwait._durable import outcome_of as outcome_of

from ._common import EVENT_FORMAT as EVENT_FORMAT
from ._common import connection_url as connection_url
from ._operator import JobsFailedError as JobsFailedError
from ._operator import JobWaitOperator as JobWaitOperator
from ._operator import wait_in_worker as wait_in_worker
from ._trigger import JobWaitTrigger as JobWaitTrigger

# Name the public home in reprs, pickles, tracebacks and Airflow's task types (as
# jobwait.testing does): users import these from here, never from the private modules.
for _cls in (JobWaitOperator, JobWaitTrigger, JobsFailedError):
    _cls.__module__ = __name__
del _cls

__all__ = [
    "EVENT_FORMAT",
    "Credential",
    "JobWaitOperator",
    "JobWaitTrigger",
    "JobsFailedError",
    "SourceSpec",
    "connection_url",
    "outcome_of",
    "wait_in_worker",
]
