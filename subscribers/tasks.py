"""Background work of the subscribers app.

Imports: `import_run` (on the `imports` queue) claims an import and runs or resumes it;
`imports_sweep` (every minute, from beat) queues again the imports whose worker died.
"""

from celery import shared_task

# --- Imports ----------------------------------------------------------------------------


# Acknowledged late: a worker that dies hands the message back. Claiming the import with a
# conditional update makes a second delivery, or the sweeper's, a no-op while one worker runs it.
@shared_task(
    name="subscribers.import_run", queue="imports", acks_late=True, soft_time_limit=3 * 3600, time_limit=3 * 3600 + 60
)
def import_run(import_id: int) -> None:
    from subscribers.imports import import_process

    import_process(import_id=import_id)


# On the default queue: a busy imports worker must not hold up the sweep that rescues a dead one's import.
@shared_task(name="subscribers.imports_sweep", queue="default", soft_time_limit=50, time_limit=55, expires=55)
def imports_sweep() -> list[int]:
    from subscribers.imports import imports_resume_stalled

    return imports_resume_stalled()
