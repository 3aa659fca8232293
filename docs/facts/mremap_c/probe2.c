#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <fcntl.h>
#define PG 4096UL
static long smapsfield(void*addr,const char*field){char l[512];FILE*f=fopen("/proc/self/smaps","r");int in=0;long v=-1;
 while(fgets(l,sizeof l,f)){unsigned long a,b;if(sscanf(l,"%lx-%lx ",&a,&b)==2&&strchr(l,'-')<strchr(l,' ')){in=(unsigned long)addr>=a&&(unsigned long)addr<b;continue;}
  if(in&&!strncmp(l,field,strlen(field))){sscanf(l+strlen(field)+1,"%ld",&v);break;}}fclose(f);return v;}
static void smapsline(void*addr,const char*field){char l[512];FILE*f=fopen("/proc/self/smaps","r");int in=0;
 while(fgets(l,sizeof l,f)){unsigned long a,b;if(sscanf(l,"%lx-%lx ",&a,&b)==2&&strchr(l,'-')<strchr(l,' ')){in=(unsigned long)addr>=a&&(unsigned long)addr<b;continue;}
  if(in&&!strncmp(l,field,strlen(field))){printf("    %s",l);break;}}fclose(f);}
static long meminfo(const char*field){char l[256];FILE*f=fopen("/proc/meminfo","r");long v=-1;while(fgets(l,sizeof l,f))if(!strncmp(l,field,strlen(field))&&l[strlen(field)]==':'){sscanf(l+strlen(field)+1,"%ld",&v);}fclose(f);return v;}
static long vmstat(const char*field){char l[256],n[128];long v;FILE*f=fopen("/proc/vmstat","r");long r=-1;while(fgets(l,sizeof l,f)){sscanf(l,"%s %ld",n,&v);if(!strcmp(n,field))r=v;}fclose(f);return r;}
static void touch(char*p,size_t n){for(size_t i=0;i<n;i+=PG)p[i]=1;}
static long readall(char*p,size_t n){long s=0;for(size_t i=0;i<n;i+=PG)s+=((volatile char*)p)[i];return s;}
static void mc(const char*t,char*p,size_t n){unsigned char v[4096];mincore(p,n,v);int c=0;for(size_t i=0;i<n/PG;i++)c+=v[i]&1;printf("    mincore[%s] %d/%zu\n",t,c,n/PG);}
#define N (4096)
static const char*vs[]={"pgdeactivate","pglazyfree","pswpout","pgrefill","pgsteal_direct","pgsteal_kswapd","pgscan_direct","pgactivate",0};
static long vb[16];static long mi[8];static const char*mis[]={"Active(anon)","Inactive(anon)","Active(file)","Inactive(file)","Shmem","Cached",0};
static void snap(){for(int i=0;vs[i];i++)vb[i]=vmstat(vs[i]);for(int i=0;mis[i];i++)mi[i]=meminfo(mis[i]);}
static void diff(const char*t){printf("  [%s]",t);for(int i=0;vs[i];i++){long d=vmstat(vs[i])-vb[i];if(d)printf(" %s %+ld",vs[i],d);}for(int i=0;mis[i];i++)printf(" %s %+ldkB",mis[i],meminfo(mis[i])-mi[i]);printf("\n");}
int main(){
 printf("== MADV_REMOVE on shared anon (16 MiB)\n");
 char*s=mmap(0,N*PG,PROT_READ|PROT_WRITE,MAP_SHARED|MAP_ANONYMOUS,-1,0); memset(s,5,N*PG);
 printf("  rss %ld kB Shmem %ld kB\n",smapsfield(s,"Rss"),meminfo("Shmem"));
 long sh0=meminfo("Shmem"); int r=madvise(s,N*PG,MADV_REMOVE); printf("  MADV_REMOVE -> %d; rss %ld kB Shmem delta %ld kB\n",r,smapsfield(s,"Rss"),meminfo("Shmem")-sh0);
 printf("  reread sum %ld rss %ld\n",readall(s,N*PG),smapsfield(s,"Rss"));
 memset(s,5,N*PG); sh0=meminfo("Shmem"); r=madvise(s,N*PG,MADV_DONTNEED); printf("  DONTNEED shared -> %d rss %ld Shmem delta %ld kB; reread sum/4096 %ld\n",r,smapsfield(s,"Rss"),meminfo("Shmem")-sh0,readall(s,N*PG)/N);
 char*pa=mmap(0,4*PG,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); touch(pa,4*PG);
 errno=0; r=madvise(pa,4*PG,MADV_REMOVE); printf("  MADV_REMOVE private anon -> %d %s\n",r,strerror(errno));
 int fd=open("/tmp/mr/g",O_RDWR|O_CREAT|O_TRUNC,0600); ftruncate(fd,16*PG); char*fs=mmap(0,16*PG,PROT_READ|PROT_WRITE,MAP_SHARED,fd,0); memset(fs,3,16*PG);
 errno=0; r=madvise(fs,4*PG,MADV_REMOVE); printf("  MADV_REMOVE shared ext4 file -> %d %s; reread %ld\n",r,strerror(errno),readall(fs,4*PG));
 char*fp=mmap(0,16*PG,PROT_READ|PROT_WRITE,MAP_PRIVATE,fd,0); errno=0; r=madvise(fp,4*PG,MADV_REMOVE); printf("  MADV_REMOVE private file -> %d %s\n",r,strerror(errno));
 char*ro=mmap(0,4*PG,PROT_READ,MAP_SHARED|MAP_ANONYMOUS,-1,0); errno=0; r=madvise(ro,4*PG,MADV_REMOVE); printf("  MADV_REMOVE shared anon PROT_READ -> %d %s\n",r,strerror(errno));
 char*sl=mmap(0,4*PG,PROT_READ|PROT_WRITE,MAP_SHARED|MAP_ANONYMOUS|MAP_LOCKED,-1,0); errno=0; r=madvise(sl,4*PG,MADV_REMOVE); printf("  MADV_REMOVE shared anon locked -> %d %s\n",r,strerror(errno));
 printf("== MADV_COLD / MADV_PAGEOUT anon (16 MiB)\n");
 char*a=mmap(0,N*PG,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); memset(a,1,N*PG); memset(a,2,N*PG);
 snap(); r=madvise(a,N*PG,MADV_COLD); diff("COLD anon"); printf("    rss %ld\n",smapsfield(a,"Rss"));
 snap(); r=madvise(a,N*PG,MADV_PAGEOUT); diff("PAGEOUT anon"); printf("    rss %ld ret %d\n",smapsfield(a,"Rss"),r);
 printf("== file (16 MiB file, read-mapped)\n");
 int fd2=open("/tmp/mr/h",O_RDWR|O_CREAT|O_TRUNC,0600); char*buf=malloc(N*PG);memset(buf,7,N*PG);write(fd2,buf,N*PG);fsync(fd2);
 char*f=mmap(0,N*PG,PROT_READ,MAP_SHARED,fd2,0); readall(f,N*PG); readall(f,N*PG);
 mc("before",f,N*PG);
 snap(); r=madvise(f,N*PG,MADV_COLD); diff("COLD file"); printf("    rss %ld\n",smapsfield(f,"Rss")); mc("after COLD",f,N*PG);
 snap(); r=madvise(f,N*PG,MADV_PAGEOUT); diff("PAGEOUT file mapped"); printf("    rss %ld ret %d\n",smapsfield(f,"Rss"),r); mc("after PAGEOUT",f,N*PG);
 char*f2=mmap(0,N*PG,PROT_READ,MAP_PRIVATE,fd2,0); readall(f2,N*PG);
 snap(); r=madvise(f2,N*PG,MADV_PAGEOUT); diff("PAGEOUT private file re-read"); mc("after",f2,N*PG);
 /* dirty shared file */
 char*fw=mmap(0,N*PG,PROT_READ|PROT_WRITE,MAP_SHARED,fd2,0); memset(fw,9,N*PG);
 snap(); r=madvise(fw,N*PG,MADV_PAGEOUT); diff("PAGEOUT dirty shared file"); mc("after",fw,N*PG); printf("    Dirty %ld Writeback %ld\n",meminfo("Dirty"),meminfo("Writeback"));
 printf("== shmem PAGEOUT\n"); memset(s,5,N*PG); snap(); r=madvise(s,N*PG,MADV_PAGEOUT); diff("PAGEOUT shmem"); printf("   rss %ld\n",smapsfield(s,"Rss"));
 printf("== errnos\n");
 errno=0;r=madvise(a+1,PG,MADV_COLD);printf("  COLD unaligned %d %s\n",r,strerror(errno));
 char*lk=mmap(0,4*PG,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED,-1,0);
 errno=0;r=madvise(lk,4*PG,MADV_COLD);printf("  COLD locked %d %s\n",r,strerror(errno));
 errno=0;r=madvise(lk,4*PG,MADV_PAGEOUT);printf("  PAGEOUT locked %d %s\n",r,strerror(errno));
 printf("== prctl MEMORY_MERGE\n");
 errno=0;r=prctl(68,0,0,0,0);printf("  GET -> %d %s\n",r,strerror(errno));
 errno=0;r=prctl(67,1,0,0,0);printf("  SET 1 -> %d %s\n",r,strerror(errno));
 errno=0;r=prctl(68,0,0,0,0);printf("  GET -> %d\n",r);
 errno=0;r=prctl(67,2,0,0,0);printf("  SET 2 -> %d %s\n",r,strerror(errno));
 errno=0;r=prctl(67,1,1,0,0);printf("  SET 1,1 -> %d %s\n",r,strerror(errno));
 errno=0;r=prctl(68,1,0,0,0);printf("  GET arg2=1 -> %d %s\n",r,strerror(errno));
 char*m=mmap(0,4*PG,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); smapsline(m,"VmFlags");
 smapsline(a,"VmFlags"); smapsline(s,"VmFlags"); smapsline(f,"VmFlags");
 errno=0;r=prctl(67,0,0,0,0);printf("  SET 0 -> %d %s\n",r,strerror(errno)); smapsline(m,"VmFlags");
 errno=0;r=prctl(68,0,0,0,0);printf("  GET -> %d\n",r);
 return 0;}
