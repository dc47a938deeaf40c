"""What crosses the workflow boundary, by kind.

- ``names``: the workflow's name and ids, and the activities' names;
- ``workflow_input``: the start argument and the durations copied from the settings;
- ``messages``: updates, signals and the details they answer with;
- ``activity_io``: each activity's input and output.

Everything is a plain dataclass or enum, so the default JSON converter handles it,
and every payload carries ids, times and enum codes only: free text and personal
data (the request's details, names, join links) stay in PostgreSQL, so they never
land in a workflow history. Durations travel as seconds because the JSON converter
has no ``timedelta`` support. The statuses and reasons are the service's one
vocabulary (``core.vocabulary``).

Only the standard library, ``temporalio`` and ``core.vocabulary`` may be imported
here: the workflow sandbox loads these modules.
"""
