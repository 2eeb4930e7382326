"""`counterfeit reindex` and `counterfeit index list|rollback`."""

from __future__ import annotations

import json
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from service.cli.common import (
    PANELS,
    RUNTIME_HELP,
    _fail,
    _refused,
    _sessions,
    _settings,
    _setup_logging,
    app,
    err,
)

index_app = typer.Typer(help="Index generations: list, roll back.", no_args_is_help=True)
app.add_typer(index_app, name="index", rich_help_panel=PANELS.REFERENCES)


@app.command(rich_help_panel=PANELS.REFERENCES)
def reindex(
    model: Optional[str] = typer.Option(None, help="Model spec; default COUNTERFEIT_MODEL"),
    index_type: str = typer.Option("auto", help="auto, flat, ivf, ivf-pq or hnsw"),
    engine: str = typer.Option("local", help="local or ray"),
    ray_address: Optional[str] = typer.Option(
        None, help="An existing Ray cluster (default: start one locally)"
    ),
    runtime: Optional[str] = typer.Option(None, help=RUNTIME_HELP),
):
    """Re-embed every reference into a new index generation and swap it in (resumes a killed run)."""
    from service.core.blobs import open_blob_store
    from service.core.errors import DomainError
    from service.jobs.launcher import JobLauncher
    from service.jobs.reindex import Reindexer, ReindexParams, params_dict
    from service.jobs.store import JobStore

    _setup_logging("warning")
    settings = _settings(model, runtime)
    try:
        params = ReindexParams(settings.model, index_type, engine, ray_address).validate()
        jobs = JobStore(_sessions())
        job = jobs.create("reindex", params_dict(params))
    except ValueError as exc:
        raise _fail(exc) from None
    except DomainError as exc:
        raise _refused(exc) from None
    err.print(f"Reindex job {job.id}: model {params.model}, engine {engine}")
    reindexer = Reindexer(
        settings, jobs.sessions, open_blob_store(settings.blob_url, settings.blob_dir), jobs
    )
    worker = JobLauncher(jobs).start(job, lambda job_id: reindexer.run(job_id, params))
    state = _follow(jobs, job.id, worker)
    for failure in state.failures:
        err.print(f"  failed reference {failure['reference_id']}: {failure['reason']}", markup=False)
    if state.state != "succeeded":
        raise _fail(f"reindex {state.state}: {state.error or ''}", 1)
    err.print(
        f"Generation {state.result['generation']} is live: {state.result['size']} references ({state.result.get('vectors', state.result['size'])} vectors), "
        f"{state.result['index_type']} index, recall@10 {state.result['recall_at_10']}, "
        f"{state.embedded} embedded now ({state.total - state.embedded - len(state.failures)} reused)."
    )
    typer.echo(json.dumps(state.result))


def _follow(jobs, job_id: str, worker) -> object:
    """A progress bar on stderr while the job's thread runs; the job's final state."""
    import time

    def show(bar: Progress, task, state) -> None:
        rate = f"{state.images_per_second or 0:.1f} img/s"
        bar.update(task, completed=state.done, total=state.total or None, rate=rate)

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=err,
    ) as bar:
        task = bar.add_task("embedding", total=None, rate="")
        while worker.is_alive():
            show(bar, task, jobs.get(job_id))
            time.sleep(0.3)
        state = jobs.get(job_id)
        show(bar, task, state)
    return state


@index_app.command("list")
def index_list():
    """Index generations on disk; * marks the current one."""
    from index.generations import Generations

    generations = Generations(_settings().index_dir)
    current = generations.current()
    for generation in generations.all():
        mark = "*" if current and generation.number == current.number else " "
        info = generation.model_info()
        typer.echo(f"{mark} {generation.number}\t{info['spec']}\t{info['fingerprint']}")


@index_app.command("rollback")
def index_rollback():
    """Make the previous generation current again (with its model); running services follow."""
    from index.generations import Generations
    from service.core.blobs import open_blob_store
    from service.serving.generation_store import GenerationStore

    settings = _settings()
    generations = Generations(settings.index_dir)
    previous = generations.previous()
    if previous is None:
        raise _fail("there is no older generation to roll back to", 1)
    generations.activate(previous)
    GenerationStore(_sessions(), generations, open_blob_store(settings.blob_url, settings.blob_dir)).publish(
        previous
    )
    err.print(f"Generation {previous.number} ({previous.model_info()['spec']}) is current again.")
