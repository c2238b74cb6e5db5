FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    TIMETABLER_DATA_DIR=/data TIMETABLER_HOST=0.0.0.0 TIMETABLER_PORT=8080

WORKDIR /src
COPY pyproject.toml README.md ./
COPY solver ./solver
COPY saga ./saga
COPY app ./app
RUN pip install --no-cache-dir . && rm -rf /src

RUN useradd --create-home --uid 10001 timetabler && mkdir /data && chown timetabler /data
USER timetabler
# The search kernel is compiled into the image, where the service's user finds it.
ENV NUMBA_CACHE_DIR=/home/timetabler/.cache/numba
RUN python -c "from solver.kernel import warm_up; warm_up()"
WORKDIR /home/timetabler
VOLUME ["/data"]
EXPOSE 8080

# slim has no curl; the standard library can ask just as well.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/api/health' % os.environ.get('TIMETABLER_PORT','8080'), timeout=4)"

CMD ["timetabler", "serve", "--host", "0.0.0.0"]
