#!/usr/bin/env bash
# Fetches, once, the jars the Spark runner needs beside pyspark and caches them by Hadoop version under
# ~/.cache/kube-datapipeline/spark/<hadoop-version>/ (XDG_CACHE_HOME moves it):
#   jars/      the S3A connector: org.apache.hadoop:hadoop-aws of the Hadoop that pyspark bundles, and the
#              AWS SDK bundle its POM names (resolved by Maven, so the two always match); the JDBC drivers
#              of HiveActivity's SQL inputs: PostgreSQL's and MariaDB's (for MySQL and MariaDB)
#   examples/  org.apache.hadoop:hadoop-mapreduce-examples, for the HadoopActivity tests only
# Idempotent and quiet when all is there. Prints the cache directory.
set -euo pipefail
python=${PYTHON:-python3}
hadoop=$("$python" - <<'EOF'
import importlib.util, pathlib, re, sys
spec = importlib.util.find_spec("pyspark")
if spec is None:
    sys.exit("pyspark is not installed: pip install 'kube-datapipeline[spark]'")
jars = pathlib.Path(spec.submodule_search_locations[0]) / "jars"
found = [m.group(1) for p in jars.glob("hadoop-client-api-*.jar") if (m := re.fullmatch(r"hadoop-client-api-(.+)\.jar", p.name))]
if len(found) != 1:
    sys.exit(f"cannot tell pyspark's Hadoop version from {jars}")
print(found[0])
EOF
)
# The runner looks here (runner/spark.py); .complete holds the digest of the POM below, so a changed POM
# fetches again.
cache="${XDG_CACHE_HOME:-$HOME/.cache}/kube-datapipeline/spark/$hadoop"
# A throwaway POM: Maven resolves hadoop-aws's runtime dependencies (the SDK bundle) from its own POM. The
# Hadoop classes themselves come from pyspark's shaded hadoop-client jars, so hadoop-common is left out.
pom=$(cat <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.kube-datapipeline</groupId><artifactId>spark-deps</artifactId><version>0</version>
  <dependencies>
    <dependency>
      <groupId>org.apache.hadoop</groupId><artifactId>hadoop-aws</artifactId><version>$hadoop</version>
      <exclusions><exclusion><groupId>org.apache.hadoop</groupId><artifactId>*</artifactId></exclusion></exclusions>
    </dependency>
    <dependency>
      <groupId>org.postgresql</groupId><artifactId>postgresql</artifactId><version>42.7.14</version>
    </dependency>
    <dependency>
      <groupId>org.mariadb.jdbc</groupId><artifactId>mariadb-java-client</artifactId><version>3.5.11</version>
    </dependency>
    <dependency>
      <groupId>org.apache.hadoop</groupId><artifactId>hadoop-mapreduce-examples</artifactId><version>$hadoop</version>
      <exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion></exclusions>
    </dependency>
  </dependencies>
</project>
EOF
)
digest=$(printf '%s' "$pom" | sha256sum | cut -d' ' -f1)
if [ -f "$cache/.complete" ] && [ "$(cat "$cache/.complete")" = "$digest" ]; then
  echo "$cache"
  exit 0
fi
command -v mvn >/dev/null || { echo "setup-spark: mvn is not installed (Debian package maven)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%s\n' "$pom" > "$work/pom.xml"
echo "setup-spark: fetching the S3A connector for Hadoop $hadoop into $cache (once, about 300 MB)" >&2
mvn -q -B -f "$work/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$work/all" >&2
mkdir -p "$work/out/jars" "$work/out/examples"
for jar in "$work"/all/*.jar; do
  case "$(basename "$jar")" in
    hadoop-mapreduce-examples-*) mv "$jar" "$work/out/examples/" ;;
    *) mv "$jar" "$work/out/jars/" ;;
  esac
done
ls "$work/out/jars" | grep -q "^hadoop-aws-$hadoop.jar$" || { echo "setup-spark: hadoop-aws was not fetched" >&2; exit 1; }
mkdir -p "$(dirname "$cache")"
rm -rf "$cache"
mv "$work/out" "$cache"
echo "$digest" > "$cache/.complete"
echo "$cache"
