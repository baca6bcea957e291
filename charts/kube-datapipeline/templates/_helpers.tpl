{{- define "kdp.name" -}}kube-datapipeline{{- end -}}
{{- define "kdp.labels" -}}
app.kubernetes.io/name: {{ include "kdp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
{{- define "kdp.selector" -}}
app.kubernetes.io/name: {{ include "kdp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "kdp.image" -}}{{ .Values.image.repository }}:{{ .Values.image.tag }}{{- end -}}
{{- define "kdp.operatorName" -}}{{ .Release.Name }}-operator{{- end -}}
