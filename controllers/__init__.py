"""Controllers: pure computations on numpy arrays (PID, LQR, MPC, CBF safety filters, dynamics models)."""
