"""A results file as `fxbench run` writes it, for tests of the report and the results reader."""
import json

from fixedpoint.bench import results


def results_file(path, records, context=None):
    """``path`` holding a complete results file of ``records`` (context: a test CPU unless given); returns path."""
    path.write_text(json.dumps({"format": results.FORMAT, "version": results.VERSION, "complete": True,
                                "context": context or {"cpu": "Test CPU", "node": "box"}, "records": records}))
    return path
