"""Render a file of prompts as draft grids, wait for them, and download the originals.

    manage.py render_prompts --team northlight --user olivia prompts.txt \\
        --tier flash --size 1K --aspect 16:9 --count 4 --out ./renders

Each line of the file is a prompt; when the file has blank lines, each
blank-line-separated block is one prompt instead (for long prompts wrapped
over several lines). Lines starting with # are comments. Every prompt
becomes one grid of --count images, submitted through `batch_submit` as
the person named by --user: the same validation, caps and credit refusals
as the studio's composer. The originals (PNG, parameters embedded) land in
--out, one folder per grid, with a batch.json describing it.

With --campaign NAME the prompts go into that campaign, under its budget, and
each may hold choices (`{red|blue} teapot`) that expand into every
combination, in as many grids as they fill; each image's axis values are in
batch.json.
"""

import json
import time
from argparse import BooleanOptionalAction
from pathlib import Path

from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError
from django.utils.text import slugify

from generation.campaigns import parse_permutation_request, permutations_submit
from generation.models import OUTSTANDING, Batch, Campaign, Generation, Project, Status
from generation.requests import InvalidRequest, parse_batch_request
from generation.selectors import BATCH_WAITING_FOR, progress_of
from generation.services import SubmitRefused, batch_submit, project_create
from studio.views.media import download_name

from ..acting import team_and_member

BAR_WIDTH = 30


def read_prompts(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.splitlines() if not line.lstrip().startswith("#")]
    blocks, current = [], []
    for line in lines:
        if line.strip():
            current.append(line.strip())
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    if len(blocks) > 1:
        return ["\n".join(block) for block in blocks]
    return [line for block in blocks for line in block]


class ProgressBar:
    """How many images are finished of how many, and how many failed, on stderr."""

    def __init__(self, stream, total: int = 0):
        self.stream = stream  # a management command's OutputWrapper
        self.total = total
        self.tty = stream.isatty()
        self.last = None

    def show(
        self, *, finished: int, done: int, failed: int, waiting: int, batch_lane: bool = False
    ) -> None:
        state = (finished, done, failed, waiting)
        if state == self.last:
            return
        self.last = state
        filled = round(BAR_WIDTH * finished / self.total) if self.total else BAR_WIDTH
        line = (
            f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {finished}/{self.total} finished"
            f" · {done} done · {failed} failed · {waiting} waiting"
        )
        if batch_lane and waiting:
            line += f" for {BATCH_WAITING_FOR}"
        # On a terminal the bar is redrawn in place; in a log, one line per change.
        text = f"\r{line}" if self.tty else line
        # Plain text: stderr's default style would paint the bar as an error.
        self.stream.write(text, style_func=str, ending="" if self.tty else "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.last is not None:
            self.stream.write("")


class Command(BaseCommand):
    help = "Submit each prompt of a file as a grid, wait with a progress bar, download the images."

    def add_arguments(self, parser):
        parser.add_argument("prompts", type=Path, help="A text file: one prompt per line or block.")
        parser.add_argument("--team", required=True, help="The team's slug.")
        parser.add_argument("--user", required=True, help="Username of the member submitting.")
        parser.add_argument("--tier", default="flash", help="flash or pro (default flash).")
        parser.add_argument("--size", default="1K", help="512, 1K, 2K or 4K (default 1K).")
        parser.add_argument("--aspect", default="1:1", help="Aspect ratio (default 1:1).")
        parser.add_argument("--count", type=int, default=4, help="Images per prompt (default 4).")
        parser.add_argument("--seed", type=int, help="Lock the first seed of every grid.")
        parser.add_argument("--fresh", action="store_true", help="Render even if stored.")
        parser.add_argument(
            "--batch",
            action="store_true",
            help="Use the batch lane: the provider's batch endpoint at the batch rate (half "
            "price by default); results may take hours, so raise --timeout or use --no-wait.",
        )
        parser.add_argument(
            "--project", help="Project to file the grids under (default: the file's name)."
        )
        parser.add_argument(
            "--campaign",
            help="Submit into this campaign of the team, under its budget; prompts may hold "
            "choices ({red|blue}) that expand into every combination.",
        )
        parser.add_argument("--out", type=Path, default=Path("renders"), help="Download folder.")
        parser.add_argument(
            "--wait",
            action=BooleanOptionalAction,
            default=True,
            help="Wait for the images and download them (default); --no-wait only submits.",
        )
        parser.add_argument("--poll", type=float, default=1.0, help="Seconds between checks.")
        parser.add_argument(
            "--timeout", type=float, default=3600, help="Give up waiting after this many seconds."
        )

    def handle(self, *args, **options):
        team, member = team_and_member(options["team"], options["user"])
        prompts = self._prompts(options["prompts"])
        project = self._project(team, member, options["project"] or options["prompts"].stem)
        if options["campaign"]:
            batches, problem = self._submit_campaign(team, member, project, prompts, options)
            requests = batches
        else:
            requests = self._requests(prompts, options)
            batches, problem = self._submit(team, member, project, requests, options)
        if not batches:
            raise CommandError(problem or "Nothing was submitted.")
        self.stdout.write(
            f"Submitted {len(batches)} of {len(requests)} grids "
            f"({sum(b.count for b in batches)} images) to “{project.name}” in {team.name}: "
            f"batches {', '.join(str(b.pk) for b in batches)}."
        )
        if not options["wait"]:
            if problem:
                raise CommandError(problem)
            return
        timed_out = not self._wait(batches, options)
        saved, failed = self._download(batches, options["out"])
        self.stdout.write(
            f"Downloaded {saved} images into {options['out']}"
            + (f"; {len(failed)} did not render:" if failed else ".")
        )
        for line in failed:
            self.stdout.write(f"  {line}")
        if timed_out:
            problem = (
                f"Gave up waiting after {options['timeout']:.0f} s; the rest keep rendering "
                "in the studio."
            )
        if problem:
            raise CommandError(problem)

    # --- steps -----------------------------------------------------------------------

    def _prompts(self, path: Path) -> list[str]:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"Cannot read {path}: {error}")
        prompts = read_prompts(text)
        if not prompts:
            raise CommandError(f"{path} has no prompts.")
        return prompts

    def _requests(self, prompts: list[str], options) -> list:
        """Every prompt checked before any is submitted: a typo fails the run, not grid 37."""
        requests, problems = [], {}
        for number, prompt in enumerate(prompts, 1):
            data = {
                "prompt": prompt,
                "tier": options["tier"],
                "size": options["size"],
                "aspect": options["aspect"],
                "count": options["count"],
                "seed": "" if options["seed"] is None else options["seed"],
                "fresh": options["fresh"],
                "lane": "batch" if options["batch"] else "interactive",
            }
            try:
                requests.append(parse_batch_request(data))
            except InvalidRequest as invalid:
                for field, message in invalid.errors.items():
                    where = f"prompt {number}" if field == "prompt" else f"--{field}"
                    problems.setdefault(where, message)
        if problems:
            raise CommandError(
                "Nothing was submitted:\n" + "\n".join(f"  {k}: {v}" for k, v in problems.items())
            )
        return requests

    def _submit_campaign(self, team, member, project, prompts, options):
        """Every prompt's combinations into the campaign at once, or nothing (past its budget)."""
        campaign = Campaign.objects.filter(team=team, name=options["campaign"]).first()
        if campaign is None:
            raise CommandError(f"{team.name} has no campaign “{options['campaign']}”.")
        requests, problems = [], {}
        for number, prompt in enumerate(prompts, 1):
            data = {"prompt": prompt, "tier": options["tier"], "size": options["size"],
                    "aspect": options["aspect"], "count": options["count"],
                    "seed": "" if options["seed"] is None else options["seed"],
                    "fresh": options["fresh"]}  # fmt: skip
            try:
                requests.append(parse_permutation_request(data))
            except InvalidRequest as invalid:
                for field, message in invalid.errors.items():
                    where = f"prompt {number}" if field == "prompt" else f"--{field}"
                    problems.setdefault(where, message)
        if problems:
            raise CommandError(
                "Nothing was submitted:\n" + "\n".join(f"  {k}: {v}" for k, v in problems.items())
            )
        try:
            batches = permutations_submit(team=team, member=member, requests=requests,
                                          project=project, campaign=campaign)  # fmt: skip
        except SubmitRefused as refused:
            return [], f"Nothing was submitted: {refused.message}"
        return batches, ""

    def _project(self, team, member, name: str) -> Project:
        name = name.strip()[:120] or "Prompt files"
        project = Project.objects.filter(team=team, name=name, archived=False).first()
        return project or project_create(team=team, member=member, name=name)

    def _submit(self, team, member, project, requests, options) -> tuple[list[Batch], str]:
        batches = []
        for number, request in enumerate(requests, 1):
            while True:
                try:
                    batches.append(
                        batch_submit(team=team, member=member, request=request, project=project)
                    )
                    break
                except SubmitRefused as refused:
                    if refused.code == "busy" and options["wait"] and batches:
                        # Too many images waiting: let some finish, then go on.
                        self._wait_for_room(batches, options)
                        continue
                    done = f"Submitted {len(batches)} of {len(requests)} grids; " if batches else ""
                    return batches, f"{done}grid {number} was refused: {refused.message}"
        return batches, ""

    def _wait_for_room(self, batches, options) -> None:
        ids = [b.pk for b in batches]
        before = Generation.objects.filter(batch_id__in=ids, status__in=OUTSTANDING).count()
        deadline = time.monotonic() + options["timeout"]
        while time.monotonic() < deadline:
            time.sleep(options["poll"])
            now = Generation.objects.filter(batch_id__in=ids, status__in=OUTSTANDING).count()
            if now < before or now == 0:
                return
        raise CommandError("Images stopped finishing; is a worker running for this lane?")

    def _wait(self, batches, options) -> bool:
        """Follow the grids until every image is finished; False on timeout."""
        ids = [b.pk for b in batches]
        bar = ProgressBar(self.stderr)
        deadline = time.monotonic() + options["timeout"]
        try:
            while True:
                generations = list(
                    Generation.objects.filter(batch_id__in=ids).only("status", "cached")
                )
                progress = progress_of(generations)
                bar.total = progress.total
                bar.show(
                    finished=progress.finished,
                    done=progress.done,
                    failed=progress.failed + progress.blocked + progress.canceled,
                    waiting=progress.queued + progress.running,
                    batch_lane=options.get("batch", False),
                )
                if progress.is_finished:
                    return True
                if time.monotonic() > deadline:
                    return False
                time.sleep(options["poll"])
        finally:
            bar.close()

    def _download(self, batches, out: Path) -> tuple[int, list[str]]:
        saved, failed = 0, []
        for batch in batches:
            folder = out / f"{batch.pk}-{slugify(batch.prompt)[:50].strip('-') or 'grid'}"
            folder.mkdir(parents=True, exist_ok=True)
            images = []
            generations = (
                Generation.objects.filter(batch=batch).select_related("asset").order_by("index")
            )
            for generation in generations:
                entry = {
                    "id": generation.pk,
                    "index": generation.index,
                    "seed": generation.seed,
                    "prompt": generation.prompt,
                    "axes": generation.axes,
                    "status": generation.status,
                    "cached": generation.cached,
                    "error": generation.error,
                    "file": None,
                }
                if generation.status == Status.SUCCEEDED and generation.asset:
                    name = download_name(generation)
                    with default_storage.open(generation.asset.original.name, "rb") as source:
                        (folder / name).write_bytes(source.read())
                    entry["file"] = name
                    saved += 1
                else:
                    reason = generation.error or generation.get_status_display()
                    failed.append(f"batch {batch.pk} image {generation.index + 1}: {reason}")
                images.append(entry)
            description = {
                "batch": batch.pk,
                "prompt": batch.prompt,
                "tier": batch.tier,
                "size": batch.size,
                "aspect": batch.aspect,
                "base_seed": batch.base_seed,
                "provider": batch.provider,
                "model": batch.model,
                "credits_quoted": batch.credits_quoted,
                "images": images,
            }
            (folder / "batch.json").write_text(
                json.dumps(description, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
            )
        return saved, failed
