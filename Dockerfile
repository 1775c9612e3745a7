# One image for the API and the worker: `tenantctl api` or `tenantctl worker`.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY lifecycle ./lifecycle
COPY workflows ./workflows
COPY activities ./activities
COPY worker.py starter_api.py ./
RUN pip install --no-cache-dir . && useradd --system --uid 10001 lifecycle
USER lifecycle
CMD ["tenantctl", "api"]
