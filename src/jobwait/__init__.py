"""jobwait: wait for remote jobs to finish."""
