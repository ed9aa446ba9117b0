"""A committed lesson's cells, read the way the lesson tests read them (cells as parsed from the .ipynb JSON)."""


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
