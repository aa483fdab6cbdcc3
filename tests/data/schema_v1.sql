-- The database schema vidpipe 0.1.0 made (schema version 1), for migration tests.
CREATE TABLE vidpipe_meta (
	"key" VARCHAR(64) NOT NULL, 
	value TEXT NOT NULL, 
	PRIMARY KEY ("key")
);
CREATE TABLE batches (
	id VARCHAR(40) NOT NULL, 
	started_at DATETIME NOT NULL, 
	finished_at DATETIME, 
	status VARCHAR(20) NOT NULL, 
	runner VARCHAR(200) NOT NULL, 
	args JSON NOT NULL, 
	report JSON, 
	PRIMARY KEY (id)
);
CREATE TABLE generations (
	"key" VARCHAR(64) NOT NULL, 
	capability VARCHAR(20) NOT NULL, 
	provider VARCHAR(64) NOT NULL, 
	model VARCHAR(200) NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	operation_id TEXT, 
	result_path TEXT, 
	result_sha256 VARCHAR(64), 
	result JSON, 
	usage JSON NOT NULL, 
	cost_usd FLOAT NOT NULL, 
	project_id VARCHAR(40), 
	owner VARCHAR(200), 
	created_at DATETIME NOT NULL, 
	completed_at DATETIME, 
	PRIMARY KEY ("key")
);
CREATE TABLE projects (
	id VARCHAR(40) NOT NULL, 
	job_name VARCHAR(64) NOT NULL, 
	source_path TEXT NOT NULL, 
	input_hash VARCHAR(64) NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	error_message TEXT, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	job JSON NOT NULL, 
	providers JSON NOT NULL, 
	models JSON NOT NULL, 
	storyboard JSON, 
	storyboard_prompt TEXT, 
	output_path TEXT, 
	output_sha256 VARCHAR(64), 
	output_duration FLOAT, 
	cost_estimate_usd FLOAT NOT NULL, 
	cost_actual_usd FLOAT NOT NULL, 
	batch_id VARCHAR(40), 
	stopped_after VARCHAR(20), 
	lease_owner VARCHAR(200), 
	lease_expires_at DATETIME, 
	timings JSON NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(batch_id) REFERENCES batches (id)
);
CREATE INDEX ix_projects_created_at ON projects (created_at);
CREATE INDEX ix_projects_input_hash ON projects (input_hash);
CREATE INDEX ix_projects_job_name ON projects (job_name);
CREATE INDEX ix_projects_status ON projects (status);
CREATE TABLE scenes (
	id INTEGER NOT NULL, 
	project_id VARCHAR(40) NOT NULL, 
	"index" INTEGER NOT NULL, 
	status VARCHAR(30) NOT NULL, 
	description TEXT NOT NULL, 
	fields JSON NOT NULL, 
	prompts JSON NOT NULL, 
	duration INTEGER NOT NULL, 
	error_message TEXT, 
	PRIMARY KEY (id), 
	UNIQUE (project_id, "index"), 
	FOREIGN KEY(project_id) REFERENCES projects (id) ON DELETE CASCADE
);
CREATE INDEX ix_scenes_project_id ON scenes (project_id);
CREATE TABLE pipeline_runs (
	id INTEGER NOT NULL, 
	project_id VARCHAR(40) NOT NULL, 
	batch_id VARCHAR(40), 
	runner VARCHAR(200) NOT NULL, 
	started_at DATETIME NOT NULL, 
	finished_at DATETIME, 
	status VARCHAR(20) NOT NULL, 
	provider_calls INTEGER NOT NULL, 
	cached_calls INTEGER NOT NULL, 
	cost_usd FLOAT NOT NULL, 
	error_message TEXT, 
	PRIMARY KEY (id), 
	FOREIGN KEY(project_id) REFERENCES projects (id) ON DELETE CASCADE, 
	FOREIGN KEY(batch_id) REFERENCES batches (id)
);
CREATE INDEX ix_pipeline_runs_project_id ON pipeline_runs (project_id);
CREATE TABLE keyframes (
	id INTEGER NOT NULL, 
	scene_id INTEGER NOT NULL, 
	kind VARCHAR(10) NOT NULL, 
	path TEXT NOT NULL, 
	sha256 VARCHAR(64) NOT NULL, 
	source VARCHAR(20) NOT NULL, 
	generation_key VARCHAR(64), 
	prompt TEXT, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (scene_id, kind), 
	FOREIGN KEY(scene_id) REFERENCES scenes (id) ON DELETE CASCADE
);
CREATE INDEX ix_keyframes_scene_id ON keyframes (scene_id);
CREATE TABLE video_clips (
	id INTEGER NOT NULL, 
	scene_id INTEGER NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	generation_key VARCHAR(64) NOT NULL, 
	operation_id TEXT, 
	path TEXT, 
	sha256 VARCHAR(64), 
	duration FLOAT, 
	attempts INTEGER NOT NULL, 
	polls INTEGER NOT NULL, 
	source VARCHAR(20) NOT NULL, 
	error_message TEXT, 
	submitted_at DATETIME, 
	completed_at DATETIME, 
	PRIMARY KEY (id), 
	FOREIGN KEY(scene_id) REFERENCES scenes (id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX ix_video_clips_scene_id ON video_clips (scene_id);
