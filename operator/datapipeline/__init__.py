"""kube-datapipeline: AWS Data Pipeline's model on Kubernetes."""
__version__ = "0.1.0"
