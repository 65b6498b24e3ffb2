"""The production side of the loop: feedback, the monitor, and the retraining it triggers."""
