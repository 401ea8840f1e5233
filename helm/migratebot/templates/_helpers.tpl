{{/* Names, labels and small computed values shared by every template. */}}

{{- define "migratebot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's resource name: "migratebot" when the release is called so, else RELEASE-migratebot. */}}
{{- define "migratebot.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "migratebot.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "migratebot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "migratebot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "migratebot.labels" -}}
helm.sh/chart: {{ include "migratebot.chart" . }}
{{ include "migratebot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: migratebot
{{- end }}

{{- define "migratebot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "migratebot.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "migratebot.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "migratebot.planConfigMap" -}}
{{- default (printf "%s-plan" (include "migratebot.fullname" .)) .Values.plan.existingConfigMap }}
{{- end }}

{{/* The plan the chart ships in its ConfigMap: plan.inline, or the repository's example plan. */}}
{{- define "migratebot.planText" -}}
{{- default (.Files.Get "files/plan.example.yaml") .Values.plan.inline }}
{{- end }}

{{/*
Who the bot acts as on its mutating calls, as YAML {users, groups}: with impersonation.enabled the
values' own lists (a plan in an existingConfigMap is out of the chart's sight); otherwise exactly the
identities of the plan's `impersonation:` section when the chart ships the plan — the bot impersonates
whoever its plan maps, so the grant follows the plan and can't fall out of step with it.
*/}}
{{- define "migratebot.impersonation" -}}
{{- $users := list }}
{{- $groups := list }}
{{- if .Values.impersonation.enabled }}
{{- $users = .Values.impersonation.users | default list }}
{{- $groups = .Values.impersonation.groups | default list }}
{{- else if not .Values.plan.existingConfigMap }}
{{- $plan := include "migratebot.planText" . | fromYaml }}
{{- range $_, $who := ($plan.impersonation | default dict) }}
{{- $users = append $users $who.user }}
{{- range ($who.groups | default list) }}
{{- $groups = append $groups . }}
{{- end }}
{{- end }}
{{- end }}
{{- dict "users" ($users | uniq | sortAlpha) "groups" ($groups | uniq | sortAlpha) | toYaml }}
{{- end }}

{{- define "migratebot.embeddedDatabase" -}}
{{- if not .Values.database.existingSecret }}true{{ end }}
{{- end }}

{{/* Restricted pod security: what the Dockerfile's image was built for (UID 10001, read-only root). */}}
{{- define "migratebot.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "migratebot.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The database URL (and nothing for the embedded SQLite file). */}}
{{- define "migratebot.databaseEnv" -}}
{{- if .Values.database.existingSecret -}}
- name: MIGRATEBOT_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.existingSecret }}
      key: {{ .Values.database.urlKey }}
{{ end -}}
- name: MIGRATEBOT_DATA_DIR
  value: /data
{{- end }}
