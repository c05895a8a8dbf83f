"""``python -m agent run …``: the agent without the rest of the ``ffrtmp`` command line."""

from agent.main import main

main()
