"""Measure how Sara reads a labelled set of customer messages (precision, recall, guardrail hits)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backoffice.evaluation import EVAL_DIR, evaluate, format_report, load_cases
from sara import agent


class Command(BaseCommand):
    help = (
        "Run labelled customer messages through Sara's reading (opt-out keywords, the interpreter, "
        "the guardrails) and print per-category precision and recall. Uses the OpenAI interpreter "
        "when OPENAI_API_KEY is set, the rules otherwise. Nothing is stored or sent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--file",
            action="append",
            dest="files",
            help="A JSONL file of {text, category, intent}; repeatable. Default: tests/eval/dev and test.",
        )
        parser.add_argument(
            "--show-misses", action="store_true", help="List every message read differently from its label."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        files = [Path(f) for f in options["files"] or []] or [EVAL_DIR / "dev.jsonl", EVAL_DIR / "test.jsonl"]
        interpreter = agent.get_interpreter()
        self.stdout.write(f"interpreter: {interpreter.__class__.__name__}")
        for path in files:
            if not path.is_file():
                raise CommandError(f"No such file: {path}")
            try:
                cases = load_cases(path)
            except (ValueError, KeyError) as exc:
                raise CommandError(str(exc)) from exc
            report = evaluate(path.name, cases, interpreter=interpreter)
            self.stdout.write(format_report(report))
            if options["show_misses"]:
                for case, predicted in report.misreadings():
                    self.stdout.write(
                        f"  [{case.category}] expected {case.intent}, read {predicted}: {case.text}"
                    )
            self.stdout.write("")
