class Workflow:
    """A sequence of passes."""

    def __init__(self, passes):
        self.passes = list(passes.passes if isinstance(passes, Workflow) else passes)

    async def run(self, circuit, data):
        for p in self.passes:
            await p.run(circuit, data)
