"""Small helpers shared by the tests: a committed lesson's cells (as parsed from the .ipynb JSON), a fake clock."""


def source(cell):
    """A cell's source as one string."""
    return "".join(cell["source"])


def printed(cell):
    """What a code cell printed or displayed as text (stdout and text/plain), as one string."""
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            parts.append("".join(output["text"]))
        elif "text/plain" in output.get("data", {}):
            parts.append("".join(output["data"]["text/plain"]))
    return "".join(parts)


class FakeClock:
    """A clock that advances one second each time it is read."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        self.now += 1.0
        return self.now
