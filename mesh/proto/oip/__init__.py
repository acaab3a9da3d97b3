"""Generated Open Inference Protocol code (see v2/)."""
