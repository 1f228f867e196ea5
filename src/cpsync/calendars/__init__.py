"""Calendar sinks: plan what a user's calendar should change, then push it (Google, CalDAV)."""
