"""momentum-ops: the operations CLI; see docs/operations.md."""
