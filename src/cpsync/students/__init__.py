"""Student progress: Codeforces client, throttle, sync planner, statistics, reminders."""
