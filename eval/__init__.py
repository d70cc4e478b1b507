"""Evaluation: metrics over traces, skeptic checks, the HTML report and the trace viewer.

* :mod:`astroreason.eval.metrics`: pure functions over trace records;
* :mod:`astroreason.eval.skeptic`: the checks that should make a reader doubt a result;
* :mod:`astroreason.eval.evaluate`: run every condition, then write metrics, report and viewer;
* :mod:`astroreason.eval.report`: ``RUN_DIR/report.html``, self-contained, and one page over several runs;
* :mod:`astroreason.eval.viewer`: ``RUN_DIR/traces.html``, serving it, one episode in the terminal.
"""
