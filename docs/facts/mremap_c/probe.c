#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/syscall.h>
#define mremap(a,b,c,d,...) ((void*)syscall(SYS_mremap,a,b,c,d,##__VA_ARGS__,0))
#define MB (1UL<<20)
#define PG 4096UL
static long minflt(void){struct rusage r;getrusage(RUSAGE_SELF,&r);return r.ru_minflt;}
static void maps(const char*tag,void*lo,void*hi){char l[512];FILE*f=fopen("/proc/self/maps","r");printf("  maps[%s]:\n",tag);
 while(fgets(l,sizeof l,f)){unsigned long a,b;sscanf(l,"%lx-%lx",&a,&b);if(b>(unsigned long)lo&&a<(unsigned long)hi)printf("    %s",l);}fclose(f);}
static long smapsfield(void*addr,const char*field){char l[512];FILE*f=fopen("/proc/self/smaps","r");int in=0;long v=-1;
 while(fgets(l,sizeof l,f)){unsigned long a,b;if(sscanf(l,"%lx-%lx ",&a,&b)==2&&strchr(l,'-')<strchr(l,' ')){in=(unsigned long)addr>=a&&(unsigned long)addr<b;continue;}
  if(in&&!strncmp(l,field,strlen(field))){sscanf(l+strlen(field)+1,"%ld",&v);break;}}fclose(f);return v;}
static long meminfo(const char*field){char l[256];FILE*f=fopen("/proc/meminfo","r");long v=-1;while(fgets(l,sizeof l,f))if(!strncmp(l,field,strlen(field))&&l[strlen(field)]==':'){sscanf(l+strlen(field)+1,"%ld",&v);}fclose(f);return v;}
static long vmstat(const char*field){char l[256],n[128];long v;FILE*f=fopen("/proc/vmstat","r");long r=-1;while(fgets(l,sizeof l,f)){sscanf(l,"%s %ld",n,&v);if(!strcmp(n,field))r=v;}fclose(f);return r;}
static void touch(char*p,size_t n){for(size_t i=0;i<n;i+=PG)p[i]=1;}
static long readall(char*p,size_t n){long s=0;for(size_t i=0;i<n;i+=PG)s+=((volatile char*)p)[i];return s;}
#define R(expr) do{ errno=0; void*_r=(expr); printf("  %-70s -> %s\n", #expr, _r==MAP_FAILED?strerror(errno):"ok"); }while(0)
#define RI(expr) do{ errno=0; long _r=(expr); printf("  %-70s -> %ld %s\n", #expr, _r, _r<0?strerror(errno):""); }while(0)
int main(){
 printf("== grow in place\n");
 char*p=mmap(0,8*PG,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); munmap(p+4*PG,4*PG); touch(p,4*PG);
 char*q=mremap(p,4*PG,8*PG,0); printf("  grow in place: %s same=%d\n", q==MAP_FAILED?strerror(errno):"ok", q==p); maps("grown",p,p+8*PG);
 printf("== shrink\n"); q=mremap(p,8*PG,2*PG,0); printf("  shrink same=%d\n",q==p); maps("shrunk",p,p+8*PG); munmap(p,2*PG);
 printf("== grow needs move\n");
 p=mmap(0,12*PG,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); munmap(p+4*PG,PG); munmap(p+5*PG,7*PG);
 char*blk=mmap(p+4*PG,PG,PROT_READ,MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED,-1,0);
 touch(p,4*PG);
 errno=0;q=mremap(p,4*PG,8*PG,0);printf("  no MAYMOVE: %s\n",q==MAP_FAILED?strerror(errno):"ok");
 long rss0=smapsfield(p,"Rss");
 q=mremap(p,4*PG,8*PG,MREMAP_MAYMOVE);printf("  MAYMOVE: moved=%d\n",q!=p);
 long f0=minflt();long s=readall(q,4*PG);long f1=minflt();printf("  reread moved 4 pages: minflt %ld, data %ld, rss before %ld kB after %ld kB\n",f1-f0,s,rss0,smapsfield(q,"Rss"));
 maps("old",p,p+5*PG); maps("new",q,q+8*PG); munmap(q,8*PG); munmap(blk,PG);
 printf("== THP move\n");
 for(int alignedDst=1;alignedDst>=0;alignedDst--){
  char*raw=mmap(0,16*MB,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0);
  char*a=(char*)(((unsigned long)raw+2*MB-1)&~(2*MB-1)); madvise(a,2*MB,MADV_HUGEPAGE); touch(a,2*MB);
  long ahp=smapsfield(a,"AnonHugePages");
  char*dst=(char*)(((unsigned long)raw+8*MB+2*MB-1)&~(2*MB-1)); if(!alignedDst)dst+=PG;
  f0=minflt(); q=mremap(a,2*MB,2*MB,MREMAP_MAYMOVE|MREMAP_FIXED,dst); f1=minflt();
  long f2=minflt(); readall(q,2*MB); long f3=minflt();
  printf("  dst aligned=%d: AHP before %ld kB, after %ld kB, Rss %ld kB, mremap minflt %ld, reread minflt %ld\n",alignedDst,ahp,smapsfield(q,"AnonHugePages"),smapsfield(q,"Rss"),f1-f0,f3-f2);
  munmap(raw,16*MB+PG);
 }
 printf("== MREMAP_FIXED errors\n");
 p=mmap(0,16*PG,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); touch(p,16*PG); R(mremap(p,4*PG,4*PG,MREMAP_FIXED,p+8*PG)); munmap(p,16*PG);
 p=mmap(0,16*PG,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); touch(p,16*PG); R(mremap(p,4*PG,4*PG,MREMAP_MAYMOVE|MREMAP_FIXED,p+2*PG)); munmap(p,16*PG);
 p=mmap(0,16*PG,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); touch(p,16*PG); R(mremap(p,4*PG,4*PG,MREMAP_MAYMOVE|MREMAP_FIXED,p+8*PG+1)); munmap(p,16*PG);
 p=mmap(0,16*PG,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); touch(p,16*PG); R(mremap(p,4*PG,4*PG,MREMAP_MAYMOVE|MREMAP_FIXED,p)); munmap(p,16*PG);
 p=mmap(0,16*PG,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); touch(p,16*PG); R(mremap(p,4*PG,8*PG,MREMAP_MAYMOVE|MREMAP_FIXED,p+4*PG)); munmap(p,16*PG);
 p=mmap(0,16*PG,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); touch(p,16*PG); R(mremap(p+1,4*PG,4*PG,MREMAP_MAYMOVE)); munmap(p,16*PG);
 p=mmap(0,16*PG,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); touch(p,16*PG); R(mremap(p,4*PG,4*PG,8)); munmap(p,16*PG);
 p=mmap(0,16*PG,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); touch(p,16*PG); R(mremap(p,4*PG,0,MREMAP_MAYMOVE)); munmap(p,16*PG);
 p=mmap(0,16*PG,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); touch(p,16*PG); R(mremap(p,0,4*PG,MREMAP_MAYMOVE)); munmap(p,16*PG);
 p=mmap(0,16*PG,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); touch(p,16*PG); R(mremap(p,4*PG,4*PG,MREMAP_DONTUNMAP)); munmap(p,16*PG);
 p=mmap(0,16*PG,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); touch(p,16*PG); R(mremap(p,4*PG,8*PG,MREMAP_MAYMOVE|MREMAP_DONTUNMAP)); munmap(p,16*PG);
 p=mmap(0,16*PG,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); touch(p,16*PG); R(mremap(p,4*PG,4*PG,MREMAP_MAYMOVE|MREMAP_DONTUNMAP|MREMAP_FIXED,p+1)); munmap(p,16*PG);
 p=mmap(0,16*PG,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); touch(p,16*PG); R(mremap(p,2*PG,2*PG,0)); munmap(p,16*PG);
 p=mmap(0,16*PG,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); touch(p,16*PG); R(mremap(p,2*PG,4*PG,0)); munmap(p,16*PG);
 p=mmap(0,16*PG,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); touch(p,16*PG); R(mremap(p+1,2*PG,4*PG,0)); munmap(p,16*PG);
 p=mmap(0,16*PG,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); touch(p,16*PG); R(mremap(p,2*PG+1,4*PG,0)); munmap(p,16*PG);
 p=mmap(0,16*PG,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); touch(p,16*PG); R(mremap(p,16*PG,32*PG,0)); munmap(p,16*PG);
 p=mmap(0,16*PG,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); touch(p,16*PG); R(mremap(p,20*PG,24*PG,MREMAP_MAYMOVE)); munmap(p,16*PG);
 p=mmap(0,16*PG,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); touch(p,16*PG); R(mremap((void*)0x10000,PG,2*PG,MREMAP_MAYMOVE)); munmap(p,16*PG);
 p=mmap(0,16*PG,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); touch(p,16*PG); R(mremap(p+20*PG,PG,PG,0)); munmap(p,16*PG);
 p=mmap(0,16*PG,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); touch(p,16*PG); R(mremap((void*)0x10000,PG,2*PG,0)); munmap(p,16*PG);
 p=mmap(0,16*PG,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); touch(p,16*PG); R(mremap(p,4*PG,4*PG,MREMAP_FIXED|MREMAP_MAYMOVE,p+4*PG)); munmap(p,16*PG);
 p=mmap(0,16*PG,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); touch(p,16*PG); R(mremap(p,4*PG,(size_t)-4096,MREMAP_MAYMOVE)); munmap(p,16*PG);
 p=mmap(0,16*PG,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); touch(p,16*PG); R(mremap(p,4*PG,2*PG,MREMAP_MAYMOVE|MREMAP_FIXED,p+12*PG)); munmap(p,16*PG);
 printf("== DONTUNMAP\n");
 p=mmap(0,4*PG,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); memset(p,7,4*PG);
 q=mremap(p,4*PG,4*PG,MREMAP_MAYMOVE|MREMAP_DONTUNMAP); if(q==MAP_FAILED){perror("dontunmap");}
 f0=minflt(); s=readall(q,4*PG); f1=minflt(); printf("  new: sum %ld minflt %ld\n",s,f1-f0);
 f0=minflt(); s=readall(p,4*PG); f1=minflt(); printf("  old: sum %ld minflt %ld rss old %ld\n",s,f1-f0,smapsfield(p,"Rss"));
 maps("old",p,p+4*PG); maps("new",q,q+4*PG);
 char*sh=mmap(0,4*PG,PROT_READ|PROT_WRITE,MAP_SHARED|MAP_ANONYMOUS,-1,0); memset(sh,1,4*PG);
 R(mremap(sh,4*PG,4*PG,MREMAP_MAYMOVE|MREMAP_DONTUNMAP));
 int fd=open("/tmp/mr/f",O_RDWR|O_CREAT|O_TRUNC,0600); ftruncate(fd,16*PG); char*fm=mmap(0,8*PG,PROT_READ,MAP_PRIVATE,fd,0);
 R(mremap(fm,8*PG,8*PG,MREMAP_MAYMOVE|MREMAP_DONTUNMAP));
 printf("== old_size 0 duplicate\n");
 q=mremap(sh,0,4*PG,MREMAP_MAYMOVE); printf("  shared dup: %s sh[0]=%d\n",q==MAP_FAILED?strerror(errno):"ok",q==MAP_FAILED?-1:q[0]);
 if(q!=MAP_FAILED){q[0]=9;printf("  after write via dup sh[0]=%d\n",sh[0]); maps("dup",q,q+4*PG);}
 R(mremap(sh,0,4*PG,0));
 char*pa=mmap(0,4*PG,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0);
 R(mremap(pa,0,4*PG,MREMAP_MAYMOVE));
 printf("== file mapping\n");
 readall(fm,8*PG); f0=minflt(); q=mremap(fm,8*PG,16*PG,MREMAP_MAYMOVE); printf("  file grow %s moved=%d\n",q==MAP_FAILED?strerror(errno):"ok",q!=fm);
 f0=minflt(); readall(q,8*PG); f1=minflt(); printf("  reread 8 moved file pages minflt %ld\n",f1-f0); maps("file",q,q+16*PG);
 printf("== locked\n");
 char*lk=mmap(0,4*PG,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); mlock(lk,4*PG);
 printf("  locked before: %ld kB\n",smapsfield(lk,"Locked"));
 f0=minflt(); q=mremap(lk,4*PG,8*PG,MREMAP_MAYMOVE); f1=minflt(); printf("  grow locked: minflt during %ld Locked %ld kB Rss %ld kB\n",f1-f0,smapsfield(q,"Locked"),smapsfield(q,"Rss"));
 q=mremap(q,8*PG,2*PG,0); printf("  shrink locked: Locked %ld kB\n",smapsfield(q,"Locked"));
 return 0;
}
