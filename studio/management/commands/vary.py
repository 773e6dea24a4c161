"""Variations of a finished image from a shell: subtle keeps its composition, strong its idea.

    manage.py vary 1234 --team northlight --user olivia --strength subtle -n 4

Through `generation_vary`, like the image page and `POST /api/v1/images/{id}/vary`.
Prints the price and the new grid; the lanes render it.
"""

from django.core.management.base import BaseCommand, CommandError

from generation.services import SubmitRefused, generation_vary

from ..acting import batch_report, team_and_member


class Command(BaseCommand):
    help = "Vary a finished image: N new images, subtle (same composition) or strong (same idea)."

    def add_arguments(self, parser):
        parser.add_argument("image", help="The id of the finished image to vary.")
        parser.add_argument("--team", required=True, help="The team's slug.")
        parser.add_argument("--user", required=True, help="Username of the member varying.")
        parser.add_argument("--strength", required=True, choices=("subtle", "strong"))
        parser.add_argument("-n", "--count", default="4", help="How many images (default 4).")

    def handle(self, *args, **options):
        team, member = team_and_member(options["team"], options["user"])
        try:
            batch = generation_vary(
                team=team,
                member=member,
                source=options["image"],
                strength=options["strength"],
                count=options["count"],
            )
        except SubmitRefused as refused:
            raise CommandError(refused.message)
        self.stdout.write("\n".join(batch_report(batch)))
