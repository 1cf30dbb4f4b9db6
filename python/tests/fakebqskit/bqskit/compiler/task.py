import uuid


class CompilationTask:
    """A circuit and the workflow to compile it with."""

    def __init__(self, circuit, workflow):
        self.task_id = uuid.uuid4()
        self.circuit = circuit
        self.workflow = workflow
        self.data = {}
        self.request_data = False

    async def run(self):
        await self.workflow.run(self.circuit, self.data)
        if not self.request_data:
            return self.circuit
        return self.circuit, self.data
