// SPDX-License-Identifier: GPL-2.0
/*
 * virtio_gpu3d: OpenGL ES 2 through Debian's unmodified Mesa, EGL surfaceless (Mesa opens the
 * render node and loads virtio_gpu_dri.so by the DRM driver's name). Runs in the chroot of the
 * suite's Mesa image.
 *   gltest info                 eglinfo-style strings of the display and the context
 *   gltest render [R G B]       clears a 64x64 framebuffer to (R, G, B)/255 (51 102 153 by
 *                               default) and draws a textured triangle over its lower left half;
 *                               checks exact pixels, prints the renderer and a hash of all pixels
 *   gltest spin                 renders and reads back until killed
 *   gltest fps SECONDS          frames per second of a fixed scene (256x256, 64 textured
 *                               triangles, each frame read back)
 * Exit 0 when every check passed, 1 otherwise.
 */
#include <EGL/egl.h>
#include <EGL/eglext.h>
#include <GLES2/gl2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static EGLDisplay dpy;

static int fail(const char *what)
{
	fprintf(stderr, "gltest: %s failed (EGL error 0x%x, GL error 0x%x)\n", what, eglGetError(), glGetError());
	return 1;
}

static int setup(void)
{
	PFNEGLGETPLATFORMDISPLAYEXTPROC get_display =
		(PFNEGLGETPLATFORMDISPLAYEXTPROC)eglGetProcAddress("eglGetPlatformDisplayEXT");
	static const EGLint ctx_attr[] = { EGL_CONTEXT_CLIENT_VERSION, 2, EGL_NONE };
	EGLint major, minor;
	EGLContext ctx;

	if (!get_display)
		return fail("eglGetProcAddress(eglGetPlatformDisplayEXT)");
	dpy = get_display(EGL_PLATFORM_SURFACELESS_MESA, EGL_DEFAULT_DISPLAY, NULL);
	if (dpy == EGL_NO_DISPLAY)
		return fail("eglGetPlatformDisplayEXT(surfaceless)");
	if (!eglInitialize(dpy, &major, &minor))
		return fail("eglInitialize");
	if (!eglBindAPI(EGL_OPENGL_ES_API))
		return fail("eglBindAPI");
	ctx = eglCreateContext(dpy, EGL_NO_CONFIG_KHR, EGL_NO_CONTEXT, ctx_attr);
	if (ctx == EGL_NO_CONTEXT)
		return fail("eglCreateContext");
	if (!eglMakeCurrent(dpy, EGL_NO_SURFACE, EGL_NO_SURFACE, ctx))
		return fail("eglMakeCurrent");
	return 0;
}

static void info(void)
{
	const char *ext = (const char *)glGetString(GL_EXTENSIONS);
	int n = 0;

	printf("EGL_VENDOR: %s\n", eglQueryString(dpy, EGL_VENDOR));
	printf("EGL_VERSION: %s\n", eglQueryString(dpy, EGL_VERSION));
	printf("EGL_CLIENT_APIS: %s\n", eglQueryString(dpy, EGL_CLIENT_APIS));
	printf("EGL_EXTENSIONS: %s\n", eglQueryString(dpy, EGL_EXTENSIONS));
	printf("GL_VENDOR: %s\n", glGetString(GL_VENDOR));
	printf("GL_RENDERER: %s\n", glGetString(GL_RENDERER));
	printf("GL_VERSION: %s\n", glGetString(GL_VERSION));
	printf("GL_SHADING_LANGUAGE_VERSION: %s\n", glGetString(GL_SHADING_LANGUAGE_VERSION));
	for (const char *p = ext; p && *p; p++)
		n += *p == ' ';
	printf("GL_EXTENSIONS: %d\n", n);
}

static GLuint shader(GLenum type, const char *src)
{
	GLuint s = glCreateShader(type);
	GLint ok = 0;

	glShaderSource(s, 1, &src, NULL);
	glCompileShader(s);
	glGetShaderiv(s, GL_COMPILE_STATUS, &ok);
	return ok ? s : 0;
}

/* A program that draws pos (attribute 0) with texture coordinates uv (attribute 1). */
static GLuint textured_program(void)
{
	static const char *vs = "attribute vec2 pos; attribute vec2 uv; varying vec2 v;\n"
				"void main() { v = uv; gl_Position = vec4(pos, 0.0, 1.0); }\n";
	static const char *fs = "precision mediump float; varying vec2 v; uniform sampler2D t;\n"
				"void main() { gl_FragColor = texture2D(t, v); }\n";
	GLuint p = glCreateProgram(), v = shader(GL_VERTEX_SHADER, vs), f = shader(GL_FRAGMENT_SHADER, fs);
	GLint ok = 0;

	if (!v || !f)
		return 0;
	glAttachShader(p, v);
	glAttachShader(p, f);
	glBindAttribLocation(p, 0, "pos");
	glBindAttribLocation(p, 1, "uv");
	glLinkProgram(p);
	glGetProgramiv(p, GL_LINK_STATUS, &ok);
	return ok ? p : 0;
}

/* A w x h RGBA framebuffer object, bound. */
static int framebuffer(int w, int h)
{
	GLuint tex, fbo;

	glGenTextures(1, &tex);
	glBindTexture(GL_TEXTURE_2D, tex);
	glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA, w, h, 0, GL_RGBA, GL_UNSIGNED_BYTE, NULL);
	glGenFramebuffers(1, &fbo);
	glBindFramebuffer(GL_FRAMEBUFFER, fbo);
	glFramebufferTexture2D(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_TEXTURE_2D, tex, 0);
	glViewport(0, 0, w, h);
	return glCheckFramebufferStatus(GL_FRAMEBUFFER) == GL_FRAMEBUFFER_COMPLETE ? 0 : -1;
}

/* The 2x2 texture: red, green (bottom row), blue, white (top row); nearest sampling. */
static void checker_texture(void)
{
	static const uint8_t texels[] = { 255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 255, 255, 255, 255 };
	GLuint tex;

	glActiveTexture(GL_TEXTURE0);
	glGenTextures(1, &tex);
	glBindTexture(GL_TEXTURE_2D, tex);
	glPixelStorei(GL_UNPACK_ALIGNMENT, 1);
	glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA, 2, 2, 0, GL_RGBA, GL_UNSIGNED_BYTE, texels);
	glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_NEAREST);
	glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
	glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_S, GL_CLAMP_TO_EDGE);
	glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_T, GL_CLAMP_TO_EDGE);
}

/* The triangle (-1,-1) (1,-1) (-1,1), the texture spread over the square it halves. */
static void triangle(float x0, float y0, float size)
{
	const GLfloat pos[] = { x0, y0, x0 + size, y0, x0, y0 + size };
	static const GLfloat uv[] = { 0, 0, 1, 0, 0, 1 };

	glVertexAttribPointer(0, 2, GL_FLOAT, GL_FALSE, 0, pos);
	glVertexAttribPointer(1, 2, GL_FLOAT, GL_FALSE, 0, uv);
	glEnableVertexAttribArray(0);
	glEnableVertexAttribArray(1);
	glDrawArrays(GL_TRIANGLES, 0, 3);
}

static int check_pixel(const uint8_t *px, int w, int x, int y, const uint8_t want[4])
{
	const uint8_t *p = px + (y * w + x) * 4;

	if (!memcmp(p, want, 4))
		return 0;
	fprintf(stderr, "gltest: pixel (%d,%d) is %u,%u,%u,%u, want %u,%u,%u,%u\n", x, y, p[0], p[1], p[2], p[3],
		want[0], want[1], want[2], want[3]);
	return 1;
}

static int render(int r, int g, int b)
{
	const int w = 64, h = 64;
	const uint8_t clear[4] = { r, g, b, 255 }, red[4] = { 255, 0, 0, 255 }, green[4] = { 0, 255, 0, 255 },
		      blue[4] = { 0, 0, 255, 255 };
	static uint8_t px[64 * 64 * 4];
	GLuint prog = textured_program();
	uint32_t hash = 2166136261u;
	int bad = 0;

	if (!prog)
		return fail("shader compilation");
	if (framebuffer(w, h))
		return fail("framebuffer");
	glClearColor(r / 255.0f, g / 255.0f, b / 255.0f, 1.0f);
	glClear(GL_COLOR_BUFFER_BIT);
	checker_texture();
	glUseProgram(prog);
	glUniform1i(glGetUniformLocation(prog, "t"), 0);
	triangle(-1, -1, 2);
	glReadPixels(0, 0, w, h, GL_RGBA, GL_UNSIGNED_BYTE, px);
	if (glGetError() != GL_NO_ERROR)
		return fail("rendering");
	/* Away from the diagonal and the texel edges (at 32): exact colours. */
	bad |= check_pixel(px, w, 8, 8, red);
	bad |= check_pixel(px, w, 40, 8, green);
	bad |= check_pixel(px, w, 8, 40, blue);
	bad |= check_pixel(px, w, 20, 20, red);
	bad |= check_pixel(px, w, 56, 56, clear);
	bad |= check_pixel(px, w, 63, 63, clear);
	bad |= check_pixel(px, w, 40, 30, clear);
	for (unsigned int i = 0; i < sizeof(px); i++)
		hash = (hash ^ px[i]) * 16777619u;
	printf("GL_RENDERER: %s\n", glGetString(GL_RENDERER));
	printf("pixels: %08x\n", hash);
	return bad;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Frames of the fixed scene until seconds have passed (or forever with 0); prints the rate. */
static int frames(double seconds)
{
	GLuint prog = textured_program();
	uint8_t px[4];
	double start;
	long n = 0;

	if (!prog || framebuffer(256, 256))
		return fail("scene setup");
	checker_texture();
	glUseProgram(prog);
	glUniform1i(glGetUniformLocation(prog, "t"), 0);
	start = now();
	while (seconds == 0 || now() - start < seconds) {
		glClearColor((n & 255) / 255.0f, 0.5f, 0.25f, 1.0f);
		glClear(GL_COLOR_BUFFER_BIT);
		for (int i = 0; i < 64; i++)
			triangle(-1 + (i % 8) * 0.25f, -1 + (i / 8) * 0.25f, 0.25f);
		glReadPixels(0, 0, 1, 1, GL_RGBA, GL_UNSIGNED_BYTE, px);
		n++;
	}
	if (glGetError() != GL_NO_ERROR)
		return fail("rendering");
	printf("fps: %.1f (%ld frames in %.1f s)\n", n / (now() - start), n, now() - start);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "render";

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (setup())
		return 1;
	if (!strcmp(mode, "info")) {
		info();
		return 0;
	}
	if (!strcmp(mode, "render") && argc == 5)
		return render(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
	if (!strcmp(mode, "render"))
		return render(51, 102, 153);
	if (!strcmp(mode, "spin"))
		return frames(0);
	if (!strcmp(mode, "fps") && argc == 3)
		return frames(atof(argv[2]));
	fprintf(stderr, "usage: gltest info | render [R G B] | spin | fps SECONDS\n");
	return 2;
}
