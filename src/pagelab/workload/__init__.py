"""Workloads shared by the simulator and the real kernel: scenarios as plain data."""

from .scenario import Band, Phase, Region, Scenario, Step, run_scenario

__all__ = ["Scenario", "Phase", "Region", "Step", "run_scenario", "Band"]
