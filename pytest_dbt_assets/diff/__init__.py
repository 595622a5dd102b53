"""What a change does: the graph impact against a base revision, data diffs, and the pull-request report."""
