"""Simulation backends: PyBullet worlds that the sim_bridge node owns and steps (imported only when a sim runs)."""
