"""Run several ``nemo`` command lines in one process, so the NeMo stack is imported once instead of per command.

    python tests/scripts/nemo_batch.py commands.json results.json

``commands.json`` is a list of ``{"argv": [...], "stdin": "..."}`` (argv without the leading ``nemo``; stdin is what
the command reads, never a terminal). ``results.json`` gets one ``{"rc": int, "out": str}`` per command, stdout and
stderr together, in order. Each command starts with nemo-run's confirmation state reset.
"""

import contextlib
import io
import json
import sys
import traceback


def main() -> None:
    commands, out_path = json.loads(open(sys.argv[1]).read()), sys.argv[2]
    # nemo-run builds the command tree from sys.argv[1] at import: name the namespace (all commands share it).
    sys.argv = ["nemo", commands[0]["argv"][0]]
    from nemo_run.__main__ import app
    from nemo_run.cli import api

    results = []
    for cmd in commands:
        api.NEMORUN_SKIP_CONFIRMATION = None
        buf = io.StringIO()
        saved_stdin, sys.stdin = sys.stdin, io.StringIO(cmd.get("stdin", ""))
        try:
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
                try:
                    rc = app(args=list(cmd["argv"]), prog_name="nemo", standalone_mode=False)
                    rc = rc if isinstance(rc, int) else 0
                except SystemExit as e:
                    rc = e.code if isinstance(e.code, int) else 1
                except BaseException:  # report, and go on with the next command
                    traceback.print_exc()
                    rc = 99
        finally:
            sys.stdin = saved_stdin
        results.append({"rc": rc, "out": buf.getvalue()})
    with open(out_path, "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
