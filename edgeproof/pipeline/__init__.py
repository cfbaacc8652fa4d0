"""One gate run's steps: resolve the inputs, optimize, judge; the gate's own trust."""
