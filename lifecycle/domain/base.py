"""The base of the domain's input models."""

from pydantic import BaseModel, ConfigDict


class DomainModel(BaseModel):
    """A model that rejects unknown fields: a typo in a request or a workflow input is an
    error that names the field, never silently dropped."""

    model_config = ConfigDict(extra="forbid")
