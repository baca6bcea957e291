"""CopyActivity: S3 and SQL data nodes in every direction, record by record and streamed.

S3 to S3 with the same format and compression is a server-side copy (AWS's
"high-performance" path): the bytes never pass through the runner. A load into
SQL is one transaction: a bad row rolls everything back. A CSV load into
PostgreSQL first tries to hand the bytes to COPY unparsed (bulkcsv), and loads
row by row when that cannot be sure to read them the same.
"""

from __future__ import annotations

from collections.abc import Iterator

from datapipeline.core.task import DataNodeSpec, TaskResult
from datapipeline.runner import bulkcsv
from datapipeline.runner.context import Context
from datapipeline.runner.errors import InvalidTask, TaskError
from datapipeline.runner.formats import ChunkStream, gzip_chunks
from datapipeline.runner.log import get
from datapipeline.runner.nodes import (
    S3_TYPES,
    SQL_TYPES,
    S3Source,
    Source,
    SqlSink,
    basename,
    format_columns,
    is_gzip,
    open_source,
    output_name,
    s3_files,
    s3_location,
    same_format,
    write_s3,
)
from datapipeline.runner.s3 import MiB, S3Url

log = get("copy")
MAX_URIS = 20  # the termination message is 4 KiB


def run(ctx: Context) -> TaskResult:
    spec = ctx.spec
    if len(spec.inputs) != 1 or len(spec.outputs) != 1:
        raise InvalidTask(f"CopyActivity {spec.name}: needs exactly one input and one output "
                          f"(has {len(spec.inputs)} and {len(spec.outputs)})")
    src, dst = spec.inputs[0], spec.outputs[0]
    for role, node in (("input", src), ("output", dst)):
        if node.type not in S3_TYPES + SQL_TYPES:
            raise InvalidTask(f"CopyActivity {spec.name}: {role} {node.name!r} is a {node.type}; CopyActivity "
                              "copies between S3DataNode and SqlDataNode/MySqlDataNode", "Task.UnsupportedNode")
    log.info("copying %s %r to %s %r", src.type, src.name, dst.type, dst.name)
    if src.type in S3_TYPES and dst.type in S3_TYPES and same_format(src, dst) \
            and not (s3_location(dst, "output")[0] == "filePath" and s3_location(src, "input")[0] != "filePath"):
        return _server_side(ctx, src, dst)
    if src.type in S3_TYPES and dst.type in S3_TYPES and same_format(src, dst, compression=False) \
            and not (src.data_format and str(src.data_format.fields.get("headerRow")).lower() == "true"):
        return _recompress(ctx, src, dst)
    if dst.type in S3_TYPES:
        return _to_s3(ctx, src, dst)
    return _to_sql(ctx, src, dst)


def _server_side(ctx: Context, src: DataNodeSpec, dst: DataNodeSpec) -> TaskResult:
    ctx.progress.phase = "copying"
    files = s3_files(ctx, src, "input")
    kind, out = s3_location(dst, "output")
    src_kind, src_url = s3_location(src, "input")
    written: list[S3Url] = []
    total = 0
    try:
        for f in files:
            if kind == "filePath":
                target = out
            elif src_kind == "directoryPath":
                target = out.child(f.key[len(src_url.dir_prefix):])  # keep the layout below the directory
            else:
                target = out.child(basename(f))
            where = f"input {src.name!r} ({f})"
            head = ctx.s3.head(f, where)
            if head is None:
                raise TaskError("S3.NoSuchKey", f"{where}: object {f} does not exist")
            ctx.s3.copy(f, target, f"output {dst.name!r} ({target})")
            written.append(target)
            total += int((head or {}).get("ContentLength", 0))
            ctx.progress.bytes = total
    except BaseException:
        _cleanup(ctx, written)
        raise
    log.info("copied %d object(s), %d bytes, server-side", len(written), total)
    return TaskResult("FINISHED", bytes=total, output_uris=tuple(str(u) for u in written[:MAX_URIS]))


def _recompress(ctx: Context, src: DataNodeSpec, dst: DataNodeSpec) -> TaskResult:
    """Same format, different compression: the bytes stream through (de)compression unparsed."""
    ctx.progress.phase = "copying"
    source = S3Source(ctx, src)
    kind, out = s3_location(dst, "output")
    groups = [source.files] if kind == "filePath" else [[f] for f in source.files]
    written: list[S3Url] = []
    try:
        for files in groups:
            target = out if kind == "filePath" else out.child(output_name(dst, basename(files[0])))

            def chunks(files: list[S3Url] = files) -> Iterator[bytes]:
                for f in files:
                    with source.open(f) as stream:
                        try:
                            while block := stream.read(MiB):
                                yield block
                        except (OSError, EOFError) as e:
                            raise TaskError("Format.Compression", f"input {src.name!r} ({f}): cannot decompress "
                                            f"the data as gzip ({e}); check the node's compression field") from None

            data = gzip_chunks(chunks()) if is_gzip(dst) else chunks()
            ctx.s3.upload(ChunkStream(counted_bytes(ctx, data)), target, f"output {dst.name!r} ({target})")  # type: ignore[arg-type]
            written.append(target)
    except BaseException:
        _cleanup(ctx, written)
        raise
    log.info("copied %d object(s) into %d, %d bytes written", len(source.files), len(written), ctx.progress.bytes)
    return TaskResult("FINISHED", bytes=ctx.progress.bytes, output_uris=tuple(str(u) for u in written[:MAX_URIS]))


def _to_s3(ctx: Context, src: DataNodeSpec, dst: DataNodeSpec) -> TaskResult:
    ctx.progress.phase = "copying"
    source = open_source(ctx, src)
    kind, _ = s3_location(dst, "output")
    header = source.columns or format_columns(dst) or None
    written: list[S3Url] = []
    try:
        if isinstance(source, S3Source) and kind == "directoryPath" and len(source.files) > 1:
            # One output object per input object, so a directory copy keeps its files.
            for f in source.files:
                single = S3Source.__new__(S3Source)
                single.__dict__.update(source.__dict__)
                single.files = [f]
                written.append(write_s3(ctx, dst, single.rows(None), output_name(dst, basename(f)), header))
        else:
            name = basename(source.files[0]) if isinstance(source, S3Source) and source.files else None
            if isinstance(source, S3Source) and not source.files:
                log.warning("input %r holds no objects; writing an empty output", src.name)
            written.append(write_s3(ctx, dst, source.rows(None), output_name(dst, name), header))
    except BaseException:
        _cleanup(ctx, written)
        raise
    finally:
        source.close()
    p = ctx.progress
    log.info("copied %d rows into %d object(s), %d bytes", p.rows_written, len(written), p.bytes)
    return TaskResult("FINISHED", rows_read=p.rows_read, rows_written=p.rows_written, bytes=p.bytes,
                      output_uris=tuple(str(u) for u in written[:MAX_URIS]))


def _to_sql(ctx: Context, src: DataNodeSpec, dst: DataNodeSpec) -> TaskResult:
    ctx.progress.phase = "connecting"
    sink = SqlSink(ctx, dst)
    source: Source | None = None
    try:
        source = open_source(ctx, src)
        expected = sink.prepare(format_columns(src) if src.type in S3_TYPES else None)
        ctx.progress.phase = "loading"
        n = bulkcsv.load(ctx, sink, source) if bulkcsv.applies(source, sink) else None
        if n is None:
            n = sink.load(iter(source.rows(expected)), source)
        ctx.progress.phase = "committing"
        sink.commit()
    finally:
        if source is not None:
            source.close()
        sink.close()  # rolls back unless committed
    p = ctx.progress
    log.info("loaded %d rows into %s (committed)", n, sink.table or "insertQuery")
    return TaskResult("FINISHED", rows_read=p.rows_read, rows_written=n, bytes=(ctx._s3.bytes_read[0] or None) if ctx._s3 else None)


def counted_bytes(ctx: Context, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Counts the bytes written as they go, so the progress lines show them."""
    for chunk in chunks:
        ctx.progress.bytes += len(chunk)
        yield chunk


def _cleanup(ctx: Context, written: list[S3Url]) -> None:
    """A failed copy removes what it already wrote, so no half-copied directory is left."""
    for url in written:
        ctx.s3.delete(url)
