"""Runs of a launch plan and what is measured from them: one recorded sim run, swarm runs, evaluation campaigns, replay, plots and rosbag2 logs.

Modules: :mod:`~aegis.runs.plan_run` (run a plan in the lockstep executor, record its bag),
:mod:`~aegis.runs.sim_run` (``aegis sim``: one run, its summary and plot), :mod:`~aegis.runs.swarm`
and :mod:`~aegis.runs.swarm_run` (several robots, one plant), :mod:`~aegis.runs.episode` (metrics and
outcome from the ground truth), :mod:`~aegis.runs.evaluation` (``aegis eval`` campaigns),
:mod:`~aegis.runs.replay` (``aegis replay``), :mod:`~aegis.runs.bag` (rosbag2 MCAP logs),
:mod:`~aegis.runs.plot` and :mod:`~aegis.runs.swarm_plot` (figures), :mod:`~aegis.runs.cli` (their
subcommands). Built on the core (node, launch plan, executors, messages); nothing in the core imports it.
"""
