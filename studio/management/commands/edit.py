"""Edit a finished image with words, optionally in a painted region, from a shell.

    manage.py edit 1234 --team northlight --user olivia \\
        -i "make the light warmer" -i "replace the mug with a teapot" \\
        [--tier pro] [--size 2K] [--mask mask.png] [--fresh]

One image per instruction, as one grid, through `generation_edit`: the same
validation, chain limit, caps, credit refusals and cache as the image page
and `POST /api/v1/images/{id}/edit`. `--mask` is a PNG of exactly the
image's pixel size, white where the change goes, black where it is kept.
Prints the price and the new grid; the lanes render it.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from generation.services import SubmitRefused, generation_edit

from ..acting import batch_report, team_and_member


class Command(BaseCommand):
    help = "Edit a finished image with words (one image per instruction), optionally masked."

    def add_arguments(self, parser):
        parser.add_argument("image", help="The id of the finished image to edit.")
        parser.add_argument("--team", required=True, help="The team's slug.")
        parser.add_argument("--user", required=True, help="Username of the member editing.")
        parser.add_argument(
            "-i", "--instruction", action="append", default=[], dest="instructions",
            help="What to change; repeat for a grid of edits of the same image.",
        )  # fmt: skip
        parser.add_argument("--tier", default="flash", help="flash or pro (default flash).")
        parser.add_argument("--size", help="The image's own size by default.")
        parser.add_argument(
            "--mask", type=Path, help="A region edit: PNG the image's size, white = change."
        )
        parser.add_argument("--fresh", action="store_true", help="Render even if stored.")

    def handle(self, *args, **options):
        team, member = team_and_member(options["team"], options["user"])
        mask = None
        if options["mask"] is not None:
            try:
                mask = options["mask"].read_bytes()
            except OSError as error:
                raise CommandError(f"Cannot read the mask {options['mask']}: {error.strerror}.")
        try:
            batch = generation_edit(
                team=team,
                member=member,
                source=options["image"],
                instructions=options["instructions"],
                tier=options["tier"],
                size=options["size"],
                fresh=options["fresh"],
                mask=mask,
            )
        except SubmitRefused as refused:
            raise CommandError(refused.message)
        self.stdout.write("\n".join(batch_report(batch)))
